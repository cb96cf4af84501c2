"""crowdwatch: crowd monitoring for video streams with P2PNet point localization."""

__version__ = "0.1.0"
