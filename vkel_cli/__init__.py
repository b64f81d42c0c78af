"""vkel: fine-grained multimodal named entity recognition and grounding (FMNERG) with VKEL."""

__version__ = "0.1.0"
