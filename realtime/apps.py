from django.apps import AppConfig


class RealtimeConfig(AppConfig):
    name = "realtime"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from accounts import signals as account_signals
        from connections import signals as connection_signals
        from crossings import signals as crossing_signals
        from realtime import metrics, receivers
        from stories import signals as story_signals

        connection_signals.message_stored.connect(receivers.on_message_stored, dispatch_uid="realtime.message_stored")
        connection_signals.messages_read.connect(receivers.on_messages_read, dispatch_uid="realtime.messages_read")
        connection_signals.connection_requested.connect(receivers.on_connection_requested,
                                                        dispatch_uid="realtime.connection_requested")
        connection_signals.connection_accepted.connect(receivers.on_connection_accepted,
                                                       dispatch_uid="realtime.connection_accepted")
        connection_signals.connection_removed.connect(receivers.on_connection_removed,
                                                      dispatch_uid="realtime.connection_removed")
        crossing_signals.crossing_recorded.connect(receivers.on_crossing_recorded,
                                                   dispatch_uid="realtime.crossing_recorded")
        story_signals.story_created.connect(receivers.on_story_created, dispatch_uid="realtime.story_created")
        account_signals.user_blocked.connect(receivers.on_user_blocked, dispatch_uid="realtime.blocked")
        account_signals.user_unblocked.connect(receivers.on_user_unblocked, dispatch_uid="realtime.unblocked")
        account_signals.profile_changed.connect(receivers.on_profile_changed, dispatch_uid="realtime.profile")
        account_signals.user_erasing.connect(receivers.on_user_erasing, dispatch_uid="realtime.erasing")
        account_signals.session_revoked.connect(receivers.on_session_revoked, dispatch_uid="realtime.session")
        metrics.register()  # the socket metrics show on every process's /metrics (zero until used)
