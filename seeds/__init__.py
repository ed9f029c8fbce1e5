"""The bundled newspaper pages (package data ``rag.seeds``): the default knowledge base's corpus."""
