"""`vkel knowledge` and `vkel vote`, and the LLM endpoints they (and `predict --engine openai`) use."""
