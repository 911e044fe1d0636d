"""HTTP layer: routes, dependencies and EHR authentication."""
