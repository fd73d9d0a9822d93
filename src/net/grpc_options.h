// The gRPC channel and server settings exo nodes use, matching what legacy exo's clients and servers
// send and accept (spec §2.6): 256 MiB messages, 32 MiB metadata, gzip, 100 concurrent streams and
// keepalive pings every 10 s (with or without calls) that the other side tolerates.
//
// Contract: pure functions, thread-safe; they only fill the builder / argument objects they are given.
#pragma once

#include <chrono>
#include <cstddef>

#include <grpcpp/server_builder.h>
#include <grpcpp/support/channel_arguments.h>

namespace exo::net {

inline constexpr int kMaxGrpcMessageBytes = 256 * 1024 * 1024;
inline constexpr int kMaxGrpcMetadataBytes = 32 * 1024 * 1024;

struct ChannelSettings {
  int max_message_bytes = kMaxGrpcMessageBytes;
  bool gzip = true;  // compress requests, as legacy clients do
  // SendTensor requests carry float activations that gzip barely shrinks (~7% for normally distributed
  // float32) at ~300 us per hop for a 2048-wide hidden state; they go uncompressed unless this is set. Legacy
  // servers accept both.
  bool compress_tensors = false;
  // gRPC's own reconnect backoff between connection attempts of one channel.
  std::chrono::milliseconds min_reconnect_backoff{100};
  std::chrono::milliseconds max_reconnect_backoff{5000};
};

// Channel arguments for a peer: the legacy client list plus a channel-local subchannel pool, so a
// re-created channel starts connecting at once instead of inheriting a shared backoff.
grpc::ChannelArguments make_channel_arguments(const ChannelSettings& settings);

// Server options: message/metadata limits, gzip accepted, keepalive and ping tolerance for legacy
// clients, and no SO_REUSEPORT (a taken port must fail instead of being shared silently).
void apply_server_settings(grpc::ServerBuilder& builder, int max_message_bytes);

}  // namespace exo::net
