"""Use cases: poll Nmbrs, reconcile changes, apply decisions and sync requests (between domain and adapters)."""
