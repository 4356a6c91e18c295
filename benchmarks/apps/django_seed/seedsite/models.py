"""The table `db.ensure_database` creates; unmanaged, so Django never migrates it."""

from __future__ import annotations

from django.db import models


class Item(models.Model):
    name = models.CharField(max_length=100)
    price = models.FloatField()
    stock = models.IntegerField()

    class Meta:
        managed = False
        db_table = "seed_item"
        app_label = "seedsite"
