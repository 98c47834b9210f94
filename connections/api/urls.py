from django.urls import path

from connections.api import views

urlpatterns = [
    path("connections/", views.ConnectionListView.as_view(), name="connections"),
    path("connections/<uuid:connection_id>/", views.ConnectionDetailView.as_view(), name="connection-detail"),
    path("connections/<uuid:connection_id>/accept/", views.ConnectionAcceptView.as_view(), name="connection-accept"),
    path("connections/<uuid:connection_id>/decline/", views.ConnectionDeclineView.as_view(),
         name="connection-decline"),
    path("connections/<uuid:connection_id>/messages/", views.MessageListView.as_view(), name="connection-messages"),
    path("connections/<uuid:connection_id>/messages/read/", views.MessageReadView.as_view(),
         name="connection-messages-read"),
]
