"""The search room: flash, regular and baseline stages.

Called, ``paretodistill.search(...)`` runs a search (``paretodistill.api.search``).
"""
