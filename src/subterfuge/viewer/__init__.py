"""The transcript viewer: a local web app (127.0.0.1 only) for reading episodes fast."""

from subterfuge.viewer.app import HOST, create_app
from subterfuge.viewer.queries import Browser, Cursor, EpisodeFilter, Page, Summary
from subterfuge.viewer.server import ViewerThread, serve

__all__ = [
    "HOST",
    "Browser",
    "Cursor",
    "EpisodeFilter",
    "Page",
    "Summary",
    "ViewerThread",
    "create_app",
    "serve",
]
