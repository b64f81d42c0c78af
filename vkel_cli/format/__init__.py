"""VKEL's sequences: the stage prompts, the target texts and the parser of generations."""
