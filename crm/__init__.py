"""The CRM store: aiosqlite system of record with versioned migrations."""

from crm.store import Store

__all__ = ["Store"]
