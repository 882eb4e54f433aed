"""IVR menus: a pure engine (engine.py) driven by the call service."""
