/* log.c — GLib log handlers for the daemon (see log.h).  Both the classic and the structured
 * GLib log paths end in emit(), so every module's messages look the same. */
#include "log.h"

#include <glib.h>
#include <stdio.h>
#include <syslog.h>

static bool log_debug;
static bool log_syslog;
static bool log_startup;

static void emit(GLogLevelFlags level, const char *domain, const char *message)
{
	const char *tag = "";
	int prio = LOG_INFO;

	if ((level & G_LOG_LEVEL_DEBUG) && !log_debug)
		return;
	/* Before the mount, a failure is reported as the one line main.c prints; the imap
	 * module's own warnings about it would only repeat it. */
	if (log_startup && !log_debug && (level & G_LOG_LEVEL_WARNING) &&
	    g_strcmp0(domain, "imap") == 0)
		return;
	if (level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL)) {
		tag = "error: ";
		prio = LOG_ERR;
	} else if (level & G_LOG_LEVEL_WARNING) {
		tag = "warning: ";
		prio = LOG_WARNING;
	} else if (level & G_LOG_LEVEL_DEBUG) {
		prio = LOG_DEBUG;
	}
	if (log_syslog) {
		syslog(prio, "%s%s%s%s", domain ? domain : "", domain ? ": " : "", tag, message);
	} else {
		fprintf(stderr, "imapfs: %s%s%s%s\n", domain ? domain : "", domain ? ": " : "", tag,
		        message);
		fflush(stderr);
	}
}

static void classic_handler(const char *domain, GLogLevelFlags level, const char *message,
                            gpointer data)
{
	emit(level, domain, message);
}

static GLogWriterOutput structured_writer(GLogLevelFlags level, const GLogField *fields,
                                          gsize n_fields, gpointer data)
{
	const char *domain = NULL, *message = NULL;

	for (gsize i = 0; i < n_fields; i++) {
		if (g_strcmp0(fields[i].key, "GLIB_DOMAIN") == 0 && fields[i].length < 0)
			domain = fields[i].value;
		else if (g_strcmp0(fields[i].key, "MESSAGE") == 0 && fields[i].length < 0)
			message = fields[i].value;
	}
	emit(level, domain, message ? message : "");
	return G_LOG_WRITER_HANDLED;
}

void ifs_log_init(bool debug)
{
	static bool installed;

	log_debug = debug;
	/* The imap module asks GLib whether debug output is wanted before formatting its trace. */
#if GLIB_CHECK_VERSION(2, 72, 0)
	g_log_set_debug_enabled(debug);
#else
	if (debug)
		g_setenv("G_MESSAGES_DEBUG", "all", TRUE);
#endif
	if (installed)
		return;
	installed = true;
	g_log_set_default_handler(classic_handler, NULL);
	g_log_set_writer_func(structured_writer, NULL, NULL);
}

void ifs_log_to_syslog(void)
{
	openlog("imapfs", LOG_PID, LOG_DAEMON);
	log_syslog = true;
}

void ifs_log_set_startup(bool startup)
{
	log_startup = startup;
}
