"""`vkel train`: examples, the Trainer run, dev selection, callbacks, run directories, exports."""
