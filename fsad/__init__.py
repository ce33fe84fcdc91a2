"""fsad: few-shot anomaly multi-classification for industrial inspection."""

__version__ = "0.1.0"
