"""Audio and speech signals: one decode pass, loudness, WhisperX transcript, analysis."""
