"""Visual signal domain."""
