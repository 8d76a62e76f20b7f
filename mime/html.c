/* html.c — the readable-text rendering of an HTML part, for the body view of HTML-only mail.
 *
 * The HTML is parsed by libxml2's error-recovering HTML parser (the same tag-soup rules a
 * browser-ish reader applies; regexes cannot get nesting, entities or comments right), then the
 * tree is walked without recursion — HTML from the wire may nest 100,000 deep — emitting text
 * the way a text-mode browser would: whitespace collapsed, blocks on their own lines, links
 * followed by their URL so a reader of the file can still follow them.
 */
#include "mime-private.h"

#include <string.h>

#include <libxml/HTMLparser.h>
#include <libxml/tree.h>

/* Elements whose content is never shown to a reader of the mail. */
static const char *const skipped[] = {
    "script", "style",  "head", "title",    "template", "iframe", "object",
    "embed",  "applet", "svg",  "frameset", "noembed",  NULL,
};

/* Elements that sit on their own lines; the number is how many line breaks surround them
 * (2 = separated by a blank line). */
static const struct {
	const char *name;
	int breaks;
} blocks[] = {
    {"p", 2},        {"h1", 2},         {"h2", 2},         {"h3", 2},      {"h4", 2},
    {"h5", 2},       {"h6", 2},         {"blockquote", 2}, {"pre", 2},     {"hr", 2},
    {"div", 1},      {"ul", 1},         {"ol", 1},         {"li", 1},      {"table", 1},
    {"tr", 1},       {"dl", 1},         {"dt", 1},         {"dd", 1},      {"address", 1},
    {"article", 1},  {"aside", 1},      {"center", 1},     {"details", 1}, {"dialog", 1},
    {"fieldset", 1}, {"figcaption", 1}, {"figure", 1},     {"footer", 1},  {"form", 1},
    {"header", 1},   {"main", 1},       {"menu", 1},       {"nav", 1},     {"section", 1},
    {"summary", 1},  {"caption", 1},    {"legend", 1},     {"body", 1},    {"html", 1},
    {"tbody", 1},    {"thead", 1},      {"tfoot", 1},      {"dir", 1},     {"noscript", 1},
};

struct link {
	size_t start; /* out->len when the <a> opened */
	char *href;   /* owned; NULL when the link has no useful URL */
};

struct render {
	GString *out;
	int pending_breaks; /* line breaks owed before the next text */
	bool pending_space; /* collapsed whitespace owed before the next text */
	int pre_depth;      /* inside <pre>: whitespace kept as is */
	GArray *lists;      /* int per open ul/ol: -1 for ul, else the next ol number */
	GArray *links;      /* struct link per open <a> */
};

static bool name_is(const xmlNode *node, const char *name)
{
	return node->name != NULL && g_ascii_strcasecmp((const char *)node->name, name) == 0;
}

static int block_breaks(const xmlNode *node)
{
	for (size_t i = 0; i < G_N_ELEMENTS(blocks); i++)
		if (name_is(node, blocks[i].name))
			return blocks[i].breaks;
	return 0;
}

static void request_breaks(struct render *r, int n)
{
	if (n > r->pending_breaks)
		r->pending_breaks = n;
}

static size_t trailing_newlines(const GString *s)
{
	size_t n = 0;

	while (n < s->len && n < 2 && s->str[s->len - 1 - n] == '\n')
		n++;
	return n;
}

/* Pay what is owed (line breaks, one space) before visible text is appended. */
static void flush_pending(struct render *r)
{
	GString *out = r->out;

	if (r->pending_breaks > 0) {
		if (out->len > 0) {
			while (out->len > 0 &&
			       (out->str[out->len - 1] == ' ' || out->str[out->len - 1] == '\t'))
				g_string_truncate(out, out->len - 1);
			for (size_t have = trailing_newlines(out); have < (size_t)r->pending_breaks;
			     have++)
				g_string_append_c(out, '\n');
		}
		r->pending_breaks = 0;
		r->pending_space = false;
	}
	if (r->pending_space) {
		if (out->len > 0 && out->str[out->len - 1] != '\n' && out->str[out->len - 1] != ' ')
			g_string_append_c(out, ' ');
		r->pending_space = false;
	}
}

static void emit_raw(struct render *r, const char *s)
{
	flush_pending(r);
	g_string_append(r->out, s);
}

static void emit_text(struct render *r, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	if (r->pre_depth > 0) {
		flush_pending(r);
		for (; *p != '\0'; p++)
			if (*p != '\r')
				g_string_append_c(r->out, (char)*p);
		return;
	}
	while (*p != '\0') {
		if (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == '\f') {
			r->pending_space = true;
			p++;
		} else if (p[0] == 0xc2 && p[1] == 0xa0) {
			/* &nbsp; is a space that does not collapse */
			flush_pending(r);
			g_string_append_c(r->out, ' ');
			p += 2;
		} else {
			flush_pending(r);
			g_string_append_c(r->out, (char)*p);
			p++;
		}
	}
}

static char *get_attr(const xmlNode *node, const char *name)
{
	xmlChar *v = xmlGetNoNsProp(node, (const xmlChar *)name);
	char *copy;

	if (v == NULL)
		return NULL;
	copy = g_strdup((const char *)v);
	xmlFree(v);
	return copy;
}

/* Inline style display:none (newsletter "preheader" text) or the hidden attribute. */
static bool is_hidden(const xmlNode *node)
{
	char *style;
	bool hidden = false;

	if (xmlHasProp(node, (const xmlChar *)"hidden") != NULL)
		return true;
	style = get_attr(node, "style");
	if (style != NULL) {
		GString *compact = g_string_new(NULL);
		for (const char *p = style; *p != '\0'; p++)
			if (!g_ascii_isspace(*p))
				g_string_append_c(compact, g_ascii_tolower(*p));
		hidden = strstr(compact->str, "display:none") != NULL;
		g_string_free(compact, TRUE);
		g_free(style);
	}
	return hidden;
}

/* The URL worth showing for an href, or NULL (fragment-only, javascript:, empty). */
static char *usable_href(const xmlNode *node)
{
	char *href = get_attr(node, "href");
	GString *clean;

	if (href == NULL)
		return NULL;
	clean = g_string_new(NULL);
	/* URLs cannot contain whitespace; senders wrap long ones across lines. */
	for (const char *p = href; *p != '\0'; p++)
		if (!g_ascii_isspace(*p) && (unsigned char)*p >= 0x20)
			g_string_append_c(clean, *p);
	g_free(href);
	if (clean->len == 0 || clean->str[0] == '#' ||
	    g_ascii_strncasecmp(clean->str, "javascript:", 11) == 0) {
		g_string_free(clean, TRUE);
		return NULL;
	}
	return g_string_free(clean, FALSE);
}

static bool same_target(const char *text, const char *href)
{
	size_t tl = strlen(text), hl = strlen(href);

	if (g_ascii_strncasecmp(href, "mailto:", 7) == 0) {
		href += 7;
		hl -= 7;
	}
	if (tl == hl && g_ascii_strncasecmp(text, href, hl) == 0)
		return true;
	/* "example.com/x" shown for "https://example.com/x", or a trailing slash added */
	for (const char *scheme = "https://"; scheme != NULL;
	     scheme = (scheme[4] == 's') ? "http://" : NULL) {
		size_t sl = strlen(scheme);
		if (hl > sl && g_ascii_strncasecmp(href, scheme, sl) == 0) {
			const char *rest = href + sl;
			size_t rl = hl - sl;
			if (tl == rl && g_ascii_strncasecmp(text, rest, rl) == 0)
				return true;
			if (rl > 0 && rest[rl - 1] == '/' && tl == rl - 1 &&
			    g_ascii_strncasecmp(text, rest, tl) == 0)
				return true;
		}
	}
	if (hl > 0 && href[hl - 1] == '/' && tl == hl - 1 &&
	    g_ascii_strncasecmp(text, href, tl) == 0)
		return true;
	return false;
}

static void close_link(struct render *r)
{
	struct link *l = &g_array_index(r->links, struct link, r->links->len - 1);

	if (l->href != NULL) {
		size_t start = MIN(l->start, r->out->len);
		char *text = g_strstrip(g_strndup(r->out->str + start, r->out->len - start));

		if (!same_target(text, l->href)) {
			char *shown =
			    g_strdup_printf("%s<%s>", text[0] != '\0' ? " " : "", l->href);
			/* the space belongs to the link, not to the collapsed whitespace around it
			 */
			r->pending_space = false;
			emit_raw(r, shown);
			g_free(shown);
		}
		g_free(text);
		g_free(l->href);
	}
	g_array_set_size(r->links, r->links->len - 1);
}

/* Entering an element: false when its content must not be shown. */
static bool enter_element(struct render *r, const xmlNode *node)
{
	int breaks;

	for (size_t i = 0; skipped[i] != NULL; i++)
		if (name_is(node, skipped[i]))
			return false;
	if (is_hidden(node))
		return false;

	breaks = block_breaks(node);
	if (breaks > 0)
		request_breaks(r, breaks);

	if (name_is(node, "br")) {
		flush_pending(r);
		g_string_append_c(r->out, '\n');
		r->pending_space = false;
	} else if (name_is(node, "hr")) {
		emit_raw(r, "---");
		request_breaks(r, 2);
	} else if (name_is(node, "pre")) {
		r->pre_depth++;
	} else if (name_is(node, "ul") || name_is(node, "ol") || name_is(node, "menu")) {
		int next = name_is(node, "ol") ? 1 : -1;
		g_array_append_val(r->lists, next);
	} else if (name_is(node, "li")) {
		char *prefix;
		guint depth = r->lists->len;
		int *counter = depth > 0 ? &g_array_index(r->lists, int, depth - 1) : NULL;
		GString *indent = g_string_new(NULL);

		for (guint i = 1; i < depth && i < 16; i++)
			g_string_append(indent, "  ");
		if (counter != NULL && *counter > 0)
			prefix = g_strdup_printf("%s%d. ", indent->str, (*counter)++);
		else
			prefix = g_strdup_printf("%s- ", indent->str);
		emit_raw(r, prefix);
		g_free(prefix);
		g_string_free(indent, TRUE);
	} else if (name_is(node, "img")) {
		char *alt = get_attr(node, "alt");
		if (alt != NULL) {
			char *trimmed = g_strstrip(alt);
			if (trimmed[0] != '\0') {
				emit_text(r, "[");
				emit_text(r, trimmed);
				emit_text(r, "]");
			}
			g_free(alt);
		}
	} else if (name_is(node, "td") || name_is(node, "th")) {
		r->pending_space = true;
	} else if (name_is(node, "a")) {
		struct link l;
		flush_pending(r);
		l.start = r->out->len;
		l.href = usable_href(node);
		g_array_append_val(r->links, l);
	}
	return true;
}

static void leave_element(struct render *r, const xmlNode *node)
{
	int breaks = block_breaks(node);

	if (name_is(node, "pre") && r->pre_depth > 0) {
		r->pre_depth--;
	} else if ((name_is(node, "ul") || name_is(node, "ol") || name_is(node, "menu")) &&
	           r->lists->len > 0) {
		g_array_set_size(r->lists, r->lists->len - 1);
	} else if (name_is(node, "a") && r->links->len > 0) {
		close_link(r);
	} else if (name_is(node, "td") || name_is(node, "th")) {
		r->pending_space = true;
	}
	if (breaks > 0)
		request_breaks(r, breaks);
}

/* Entering any node: false when not to descend into it. */
static bool enter_node(struct render *r, const xmlNode *node)
{
	switch (node->type) {
	case XML_ELEMENT_NODE:
		return enter_element(r, node);
	case XML_TEXT_NODE:
	case XML_CDATA_SECTION_NODE:
		if (node->content != NULL)
			emit_text(r, (const char *)node->content);
		return false;
	case XML_DOCUMENT_NODE:
	case XML_HTML_DOCUMENT_NODE:
	case XML_DOCUMENT_FRAG_NODE:
		return true;
	default:
		return false; /* comments, processing instructions, DTDs */
	}
}

static void leave_node(struct render *r, const xmlNode *node)
{
	if (node->type == XML_ELEMENT_NODE)
		leave_element(r, node);
}

/* Depth-first walk with parent/next pointers: constant stack however deep the document. */
static void walk(struct render *r, xmlNode *top)
{
	xmlNode *cur = top;

	while (cur != NULL) {
		bool descend = enter_node(r, cur);

		if (descend && cur->children != NULL) {
			cur = cur->children;
			continue;
		}
		if (descend)
			leave_node(r, cur);
		while (cur != top && cur->next == NULL) {
			cur = cur->parent;
			if (cur == NULL)
				return;
			leave_node(r, cur);
		}
		if (cur == top)
			return;
		cur = cur->next;
	}
}

/* Trailing blanks off every line, runs of blank lines down to one, no blank lines at either
 * end, a final newline. */
static char *tidy(const char *s, size_t len, size_t *len_r)
{
	GString *out = g_string_sized_new(len + 1);
	const char *p = s, *end = s + len;
	size_t blank_run = 0;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *line_end = nl != NULL ? nl : end;
		const char *e = line_end;

		while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		if (e == p) {
			blank_run++;
		} else {
			if (out->len > 0)
				g_string_append(out, blank_run > 0 ? "\n\n" : "\n");
			g_string_append_len(out, p, e - p);
			blank_run = 0;
		}
		p = nl != NULL ? nl + 1 : end;
	}
	if (out->len > 0)
		g_string_append_c(out, '\n');
	if (len_r != NULL)
		*len_r = out->len;
	return g_string_free(out, FALSE);
}

char *mime_html_to_text(const char *html, size_t len, size_t *len_r)
{
	struct render r = {0};
	htmlDocPtr doc;
	char *tidied, *result;
	size_t tidied_len;

	if (len > G_MAXINT)
		len = G_MAXINT;
	/* The caller hands over UTF-8, so say so: a <meta charset> inside must not re-decode it.
	 * HUGE lifts libxml2's 10 MB text-node and 256-level depth limits, which would otherwise
	 * silently drop the rest of a big document; the walk below needs no stack for depth. */
	doc = htmlReadMemory(html, (int)len, NULL, "UTF-8",
	                     HTML_PARSE_RECOVER | HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING |
	                         HTML_PARSE_NONET | XML_PARSE_HUGE);
	r.out = g_string_sized_new(len / 2 + 16);
	r.lists = g_array_new(FALSE, FALSE, sizeof(int));
	r.links = g_array_new(FALSE, FALSE, sizeof(struct link));
	if (doc != NULL) {
		walk(&r, (xmlNode *)doc);
		xmlFreeDoc(doc);
	}
	while (r.links->len > 0)
		close_link(&r);
	g_array_free(r.lists, TRUE);
	g_array_free(r.links, TRUE);

	tidied = tidy(r.out->str, r.out->len, &tidied_len);
	g_string_free(r.out, TRUE);
	/* Character references like &#xD800; must not leak invalid UTF-8 into a view. */
	result = mime_utf8_sanitize(tidied, (gssize)tidied_len, len_r);
	g_free(tidied);
	return result;
}
