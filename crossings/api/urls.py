from django.urls import path

from crossings.api import views

urlpatterns = [
    path("crossings/", views.CrossingListView.as_view(), name="crossings"),
    path("crossings/<uuid:crossing_id>/", views.CrossingDetailView.as_view(), name="crossing-detail"),
]
