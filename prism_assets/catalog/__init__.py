from .repo import Catalog, DeliveryRecord, delivery_key  # noqa: F401
