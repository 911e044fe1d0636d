"""Persistence of issued cards and clinician feedback (see store.base for the contract)."""
