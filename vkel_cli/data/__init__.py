"""Importers: benchmark and text-corpus formats -> the record stream."""
