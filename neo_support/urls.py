from __future__ import annotations

from allauth.account.decorators import secure_admin_login
from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import SimpleRouter

from bots import api as bot_api
from bots import views as bot_views
from bots.analytics import api as analytics_api
from bots.chat import api as conversation_api
from bots.chat import http_fallback
from bots.moderation_log import api as moderation_api
from bots.privacy import api as privacy_api
from bots.tickets import api as ticket_api
from bots.tickets import contact
from bots.webhooks import api as webhook_api
from neo_support import account_views, setup_views, views
from neo_support.audit import api as audit_api
from retrieval import api as retrieval_api

# Django admin signs in through allauth too, so its sign-in asks for the TOTP code.
admin.site.login = secure_admin_login(admin.site.login)

router = SimpleRouter()
router.register("bots", bot_api.BotViewSet, basename="api-bot")
router.register("knowledge-bases", retrieval_api.KnowledgeBaseViewSet, basename="api-knowledge-base")
router.register("conversations", conversation_api.ConversationViewSet, basename="api-conversation")

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("healthz/live", views.healthz_live, name="healthz-live"),
    path("admin/", admin.site.urls),
    # Staff accounts: allauth's pages (sign-in, sign-up, password, 2FA, sessions), a few
    # of them through our own views first (neo_support/account_views.py).
    path("accounts/", account_views.account_overview, name="account_overview"),
    path("accounts/login/", account_views.LoginView.as_view(), name="account_login"),
    path("accounts/logout/", account_views.LogoutView.as_view(), name="account_logout"),
    re_path(r"^accounts/confirm-email/(?P<key>[-:\w]+)/$", account_views.ConfirmEmailView.as_view()),
    path("accounts/sessions/<int:session_id>/end", account_views.session_end, name="account_session_end"),
    path("accounts/", include("allauth.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/messages/<int:message_id>/feedback/", conversation_api.FeedbackApi.as_view(), name="api-feedback"),
    path("api/models/", bot_api.ServedModelListApi.as_view(), name="api-models"),
    path("api/analytics/", analytics_api.AnalyticsApi.as_view(), name="api-analytics"),
    path("api/audit/", audit_api.AuditListApi.as_view(), name="api-audit"),
    path("api/moderation/summary/", moderation_api.ModerationSummaryApi.as_view(), name="api-moderation-summary"),
    path("api/tickets/", ticket_api.TicketListApi.as_view(), name="api-tickets"),
    path("api/tickets/<int:ticket_id>/", ticket_api.TicketDetailApi.as_view(), name="api-ticket"),
    path("api/bots/<str:public_key>/inbound-email", ticket_api.inbound_email, name="inbound-email"),
    path("api/webhooks/", webhook_api.WebhookListApi.as_view(), name="api-webhooks"),
    path("api/webhooks/<int:endpoint_id>/", webhook_api.WebhookDetailApi.as_view(), name="api-webhook"),
    path(
        "api/webhooks/<int:endpoint_id>/deliveries/",
        webhook_api.WebhookDeliveryListApi.as_view(),
        name="api-webhook-deliveries",
    ),
    path("api/privacy/retention/", privacy_api.RetentionApi.as_view(), name="api-privacy-retention"),
    path("api/privacy/person/", privacy_api.PersonApi.as_view(), name="api-privacy-person"),
    path("api/privacy/person/export/", privacy_api.PersonExportApi.as_view(), name="api-privacy-export"),
    path("api/privacy/erasures/", privacy_api.ErasureListApi.as_view(), name="api-privacy-erasures"),
    path("api/privacy/erasures/<int:erasure_id>/", privacy_api.ErasureDetailApi.as_view(), name="api-privacy-erasure"),
    path("api/", include("retrieval.urls")),
    path("api/", include(router.urls)),
    path("dashboard/", include("bots.urls")),
    path("dashboard/", include("neo_support.dashboard_urls")),
    path("dashboard/analytics/", include("bots.analytics.urls")),
    path("dashboard/conversations/", include("bots.chat.urls")),
    path("dashboard/knowledge-bases/", include("retrieval.dashboard_urls")),
    path("setup/", setup_views.setup_page, name="setup"),
    path("demo/", bot_views.demo_page, name="demo"),
    path("demo/<str:public_key>/", bot_views.demo_bot_page, name="demo-bot"),
    path("widget.js", bot_views.widget_js, name="widget-js"),
    path("chat/<str:public_key>/frames", http_fallback.frames, name="chat-frames"),
    path("chat/<str:public_key>/events", http_fallback.events, name="chat-events"),
    path("chat/<str:public_key>/contact", contact.contact, name="chat-contact"),
    path("", bot_views.home, name="home"),
    # Anything else under /api/ answers in JSON, in DEBUG too.
    re_path(r"^api/", views.api_not_found),
]

handler404 = "neo_support.views.not_found"
handler429 = "neo_support.account_views.too_many_requests"  # allauth's throttles
handler500 = "neo_support.views.server_error"
