"""GPT-Neo replies: model loading, prompt building, streaming, extractive fallback."""
