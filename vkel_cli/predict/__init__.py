"""`vkel predict`: jobs (prompts and parsing), the local engine, torchrun sharding, the engines."""
