"""Runnable example apps; the seed's examples come first."""
