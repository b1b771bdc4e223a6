from django.apps import AppConfig


class NeoSupportConfig(AppConfig):
    name = "neo_support"
    verbose_name = "Organizations"

    def ready(self) -> None:
        # The API key scheme registers with drf-spectacular; single sign-on's signal
        # receiver joins organizations; the audit log hears sign-ins and failures.
        from neo_support import api_schema, sso  # noqa: F401
        from neo_support.audit import signals  # noqa: F401
