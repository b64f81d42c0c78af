"""Model helpers: tiny random checkpoints for tests and smoke runs (`vkel models tiny`)."""
