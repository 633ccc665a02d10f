SELECT namespace, standing FROM statustrace_scheduler_standing WHERE tenant = ?
