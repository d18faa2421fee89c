// hiredis, fenced off: only DibsRedis/RESPCodec.swift imports this module.
#include <hiredis/hiredis.h>
#include <hiredis/read.h>
