from django.apps import AppConfig


class StoriesConfig(AppConfig):
    name = "stories"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from accounts import signals as account_signals
        from accounts.report_targets import register_report_target
        from connections.signals import connection_removed
        from locations.sweepers import register_sweeper
        from stories import receivers
        from stories.api.serializers import StoryReportOut, StoryReportTargetIn

        register_report_target("story_id", receivers.report_story,
                               request=StoryReportTargetIn, response=StoryReportOut)
        register_sweeper("stories")(receivers.sweep)
        connection_removed.connect(receivers.on_connection_removed, dispatch_uid="stories.connection_removed")
        account_signals.user_blocked.connect(receivers.on_user_blocked, dispatch_uid="stories.blocked")
        account_signals.user_erasing.connect(receivers.on_user_erasing, dispatch_uid="stories.erasing")
