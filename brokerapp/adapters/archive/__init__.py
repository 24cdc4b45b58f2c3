"""The archivers' I/O: atomic file writes under a local or fsspec root, the file formats."""
