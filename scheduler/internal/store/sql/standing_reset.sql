DELETE FROM statustrace_scheduler_standing WHERE tenant = ? AND namespace = ?
