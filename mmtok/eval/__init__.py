"""Quality metrics and evaluation reports."""
