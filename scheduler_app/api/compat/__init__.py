"""FastScheduler's documented REST API under /scheduler/api/, for users who migrate.

A thin adapter: requests are translated into the Tempora API's serializers and services
(schedule.py translates schedules, views.py the endpoints); nothing here schedules or
stores anything by itself.
"""
