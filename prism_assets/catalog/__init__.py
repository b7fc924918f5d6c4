from .repo import Catalog, DeliveryRecord, connect, delivery_key  # noqa: F401
