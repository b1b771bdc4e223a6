from django.apps import AppConfig


class NeoSupportConfig(AppConfig):
    name = "neo_support"
    verbose_name = "Organizations"

    def ready(self) -> None:
        from neo_support import api_schema  # noqa: F401 - registers the API key scheme with drf-spectacular
