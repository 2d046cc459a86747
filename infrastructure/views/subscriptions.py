"""Subscriptions to the event log that hand out batches.

PostgreSQL: the library's LISTEN/NOTIFY subscription. SQLite recorders cannot
subscribe, so :class:`PollingSubscription` reuses the library's pulling machinery and
wakes it on a timer, or at once when this process has just written (the doorbell).
Both pull pages in a background thread; :meth:`Batches.next_batch` takes what has
arrived, so one database transaction applies many events.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from queue import Empty
from typing import Any

from eventsourcing.persistence import (
    ApplicationRecorder,
    ListenNotifySubscription,
    Notification,
    ShutDown,
)
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresSubscription
from psycopg.sql import SQL, Identifier


class Doorbell:
    """Rung after every save in this process; wakes the polling subscriptions."""

    def __init__(self) -> None:
        self._listeners: list[threading.Event] = []
        self._lock = threading.Lock()

    def ring(self, *_: Any) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for event in listeners:
            event.set()

    def listen(self, event: threading.Event) -> None:
        with self._lock:
            self._listeners.append(event)

    def forget(self, event: threading.Event) -> None:
        with self._lock:
            if event in self._listeners:
                self._listeners.remove(event)


class Batches:
    """Mixed into the library's subscriptions (pinned at eventsourcing 9.5)."""

    _notifications: Sequence[Notification]
    _notifications_index: int
    _notifications_queue: Any
    _has_been_stopped: bool
    _has_been_notified: threading.Event
    _last_notification_id: int | None
    _recorder: ApplicationRecorder
    _topics: Sequence[str]
    # Set before the library's __init__ starts the pull thread, which reads it.
    _page_size: int = 1000
    # Pause before pulling, so the notifications of a busy moment share one query
    # (under load a pull per write, per runner, cost the API half its throughput).
    _linger: float = 0.02

    def _pull(self) -> None:
        """The library's pull, with our page size (its own is fixed at 500)."""
        if self._linger:
            time.sleep(self._linger)
        while not self._has_been_stopped:
            self._has_been_notified.clear()
            notifications = self._recorder.select_notifications(
                start=self._last_notification_id or 0,
                limit=self._page_size,
                topics=self._topics,
                inclusive_of_start=False,
            )
            if notifications:
                try:
                    self._notifications_queue.put(notifications)
                except ShutDown:
                    break
                self._last_notification_id = notifications[-1].id
            if len(notifications) < self._page_size:
                break

    def next_batch(self, limit: int) -> list[Notification]:
        """Block for the next notification, then take up to ``limit`` already pulled."""
        batch = [next(self)]  # type: ignore[call-overload]  # StopIteration once stopped
        while len(batch) < limit:
            if self._notifications_index < len(self._notifications):
                end = self._notifications_index + limit - len(batch)
                taken = self._notifications[self._notifications_index : end]
                self._notifications_index += len(taken)
                batch.extend(taken)
                continue
            if self._has_been_stopped:
                break
            try:
                page = self._notifications_queue.get_nowait()
            except (Empty, ShutDown):
                break
            self._notifications_queue.task_done()
            self._notifications, self._notifications_index = page, 0
        return batch


class BatchingPostgresSubscription(Batches, PostgresSubscription):
    """The library's LISTEN/NOTIFY subscription, in batches.

    Its first pull waits until LISTEN has run, so an event written in between wakes
    it; and it also looks every ``backstop`` seconds, in case a notification is lost
    with a dropped connection.
    """

    def __init__(
        self,
        recorder: PostgresApplicationRecorder,
        gt: int | None = None,
        topics: Sequence[str] = (),
        page_size: int = 1000,
        backstop: float = 1.0,
    ) -> None:
        self._page_size = page_size
        self._listening = threading.Event()
        self._backstop = backstop
        super().__init__(recorder=recorder, gt=gt, topics=topics)
        self._backstop_thread = threading.Thread(
            target=self._wake_now_and_then, name="subscription-backstop", daemon=True
        )
        self._backstop_thread.start()

    def _loop_on_pull(self) -> None:
        self._listening.wait()
        super()._loop_on_pull()

    def _listen(self) -> None:
        try:
            with self._recorder.datastore.get_connection() as conn:
                conn.execute(SQL("LISTEN {0}").format(Identifier(self._recorder.channel_name)))
                self._listening.set()
                while not self._has_been_stopped and not self._thread_error:
                    for _ in conn.notifies(timeout=0.1, stop_after=1):
                        self._has_been_notified.set()
        except BaseException as error:  # noqa: BLE001 (handed to the reader, as the library does)
            if self._thread_error is None:
                self._thread_error = error
            self.stop()
        finally:
            self._listening.set()  # never leave the pull thread waiting

    def _wake_now_and_then(self) -> None:
        while not self._has_been_stopped:
            threading.Event().wait(self._backstop)
            self._has_been_notified.set()


class PollingSubscription(Batches, ListenNotifySubscription[ApplicationRecorder]):
    """For SQLite: look for new events every ``interval`` seconds or when rung."""

    def __init__(
        self,
        recorder: ApplicationRecorder,
        gt: int | None = None,
        topics: Sequence[str] = (),
        page_size: int = 1000,
        interval: float = 0.05,
        doorbell: Doorbell | None = None,
    ) -> None:
        self._page_size = page_size
        super().__init__(recorder=recorder, gt=gt, topics=topics)
        self._interval = interval
        self._doorbell = doorbell
        self._rung = threading.Event()
        if doorbell is not None:
            doorbell.listen(self._rung)
        self._poll_thread = threading.Thread(target=self._poll, name="poll-subscription", daemon=True)
        self._poll_thread.start()

    def _poll(self) -> None:
        while not self._has_been_stopped:
            self._rung.wait(self._interval)
            self._rung.clear()
            self._has_been_notified.set()

    def stop(self) -> None:
        super().stop()
        self._rung.set()
        if self._doorbell is not None:
            self._doorbell.forget(self._rung)

    def __exit__(self, *args: object, **kwargs: Any) -> None:
        try:
            super().__exit__(*args, **kwargs)
        finally:
            self._poll_thread.join()


def subscribe(
    recorder: ApplicationRecorder,
    gt: int | None,
    topics: Sequence[str],
    *,
    page_size: int = 1000,
    doorbell: Doorbell | None = None,
    interval: float = 0.05,
) -> BatchingPostgresSubscription | PollingSubscription:
    if isinstance(recorder, PostgresApplicationRecorder):
        return BatchingPostgresSubscription(recorder, gt, topics, page_size=page_size)
    return PollingSubscription(
        recorder, gt, topics, page_size=page_size, interval=interval, doorbell=doorbell
    )
