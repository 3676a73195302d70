"""The study centre: the ingester, the PostgreSQL store, and study export, report, withdrawal.

Nothing but the command line imports this package; it imports the store (records), the
bridge's MQTT wrapper and the plan. asyncpg and matplotlib load inside the code using them.
"""
