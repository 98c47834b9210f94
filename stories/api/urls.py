from django.urls import path

from stories.api import views

urlpatterns = [
    path("stories/", views.StoryCreateView.as_view(), name="stories"),
    path("stories/feed/", views.FeedView.as_view(), name="stories-feed"),
    path("stories/nearby/", views.NearbyView.as_view(), name="stories-nearby"),
    path("stories/close-friends/", views.CloseFriendListView.as_view(), name="close-friends"),
    path("stories/close-friends/<uuid:user_id>/", views.CloseFriendDetailView.as_view(), name="close-friend"),
    path("stories/<uuid:story_id>/", views.StoryDetailView.as_view(), name="story-detail"),
    path("stories/<uuid:story_id>/report/", views.StoryReportView.as_view(), name="story-report"),
]
