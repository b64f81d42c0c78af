"""`vkel report`: one self-contained HTML page for error analysis (scores, confusion matrix, IoU
histogram, one card per tweet with its boxes drawn). `page.build_report` is the entry point."""
