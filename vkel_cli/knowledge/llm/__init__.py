"""LLM backends behind one small interface (base.Endpoint), shared by `vkel knowledge`, `vkel vote`
and `vkel predict --engine openai`: OpenAI-compatible HTTP, local transformers, a persistent cache,
a token ledger and an order-keeping parallel map."""
