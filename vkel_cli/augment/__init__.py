"""`vkel augment`: retrieval, image preparation and the CLIP filter."""
