/*
 * redis_reader.h - hiredis' RESP reader with a bound on what a reply may
 * make us allocate.
 *
 * hiredis (0.14, Debian 12's) sizes an array from the count the server
 * sends: twelve bytes, "*444444440\r\n", ask for 3.5 GB before a single
 * element arrives, and nested arrays multiply that. Whatever is on the
 * other end of a Redis URL (a broken proxy, a hostile server, a port
 * reused by something else) could exhaust the process. The reader made
 * here counts the array slots one reply asks for and refuses the reply
 * once they pass REDIS_REPLY_MAX_ELEMENTS: the reader reports an error
 * (redis_reader_error says which) and the connection is dropped, as for
 * any protocol error. Our own replies stay far below it: the largest is a
 * job listing, bounded by the API's page limit.
 */
#ifndef TRIREME_KERNEL_REDIS_READER_H
#define TRIREME_KERNEL_REDIS_READER_H

#include <hiredis/read.h>

/* Array slots one reply may ask for, over all its nesting levels (8 bytes
 * each: 8 MB at most). */
#define REDIS_REPLY_MAX_ELEMENTS (1024 * 1024)
/* Unused read buffer hiredis keeps between replies. */
#define REDIS_READER_MAXBUF (1024 * 1024)

/* Aborts when out of memory, as xalloc does. */
redisReader *redis_reader_new(void);
void redis_reader_free(redisReader *r);
/* Why the last redisReaderGetReply failed. */
const char *redis_reader_error(redisReader *r);

#endif
