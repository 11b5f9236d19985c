/*
 * utf8_test: pkg/utf8 against RFC 3629 (and the Autobahn suite's classic cases): valid
 * sequences of every length, overlong forms, surrogates, code points past U+10FFFF, cut and
 * broken sequences, and sequence lengths read within the bytes given.
 */
#include "pkg/utf8/utf8.h"
#include "test/harness.h"

/* UTF-8 (RFC 3629 and the Autobahn suite's classic cases). */
static void check_utf8(const char *bytes, size_t n, bool want)
{
	CHECK_EQ(utf8_valid((const uint8_t *)bytes, n), want);
}

static void test_utf8(void)
{
	check_utf8("", 0, true);
	check_utf8("hello", 5, true);
	check_utf8("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5", 11, true); /* kosme */
	check_utf8("\xf0\x90\x80\x80", 4, true);                              /* U+10000 */
	check_utf8("\xf4\x8f\xbf\xbf", 4, true);                              /* U+10FFFF */
	check_utf8("\xef\xbf\xbf", 3, true);                                  /* U+FFFF */
	check_utf8("\xf4\x90\x80\x80", 4, false);                             /* above U+10FFFF */
	check_utf8("\xed\xa0\x80", 3, false);                                 /* a surrogate */
	check_utf8("\xc0\xaf", 2, false);                                     /* overlong '/' */
	check_utf8("\xe0\x80\xaf", 3, false);                                 /* overlong '/' */
	check_utf8("\xf0\x80\x80\xaf", 4, false);                             /* overlong '/' */
	check_utf8("\x80", 1, false);     /* a lone continuation */
	check_utf8("\xce", 1, false);     /* cut short */
	check_utf8("\xe1\xbd", 2, false); /* cut short */
	check_utf8("\xce\x41", 2, false); /* not a continuation */
	check_utf8("\xff", 1, false);
	check_utf8("\xf8\x88\x80\x80\x80", 5, false); /* five bytes */
}

static void test_seq_len(void)
{
	const uint8_t euro[] = {0xe2, 0x82, 0xac, 'x'};

	CHECK_EQ(utf8_seq_len(euro, 4), 3);
	CHECK_EQ(utf8_seq_len(euro, 2), 0); /* never read past what was given */
	CHECK_EQ(utf8_seq_len(euro + 3, 1), 1);
	CHECK_EQ(utf8_seq_len(euro, 0), 0);
	CHECK_EQ(utf8_seq_len(euro + 1, 3), 0); /* a continuation byte starts nothing */
}

int main(void)
{
	RUN(test_utf8());
	RUN(test_seq_len());
	return harness_done();
}
