"""The serving layer: the HTTP API and the title viewer (`prism serve`). It reads the index, the
artifacts and the catalog through their public interfaces and imports neither Dagster nor the model
stack (the API image stays slim: numpy, LanceDB, tokenizers, FastAPI)."""
