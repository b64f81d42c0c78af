"""FMNERG / FMNER / EEG scoring, the detector ceiling (Table I) and the tables they print."""
