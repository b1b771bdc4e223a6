from django.apps import AppConfig


class NeoSupportConfig(AppConfig):
    name = "neo_support"
    verbose_name = "Organizations"
