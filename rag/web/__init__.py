"""Helpers of the Gradio page (app.py): HTML rendering, uploads and document management."""
