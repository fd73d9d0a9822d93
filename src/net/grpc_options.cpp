#include "net/grpc_options.h"

#include <grpc/compression.h>
#include <grpc/grpc.h>

namespace exo::net {
namespace {
constexpr int kKeepaliveTimeMs = 10'000;
constexpr int kKeepaliveTimeoutMs = 5'000;
constexpr int kMinSentPingIntervalMs = 10'000;
constexpr int kMinReceivedPingIntervalMs = 5'000;
constexpr int kMaxConcurrentStreams = 100;

int to_ms(std::chrono::milliseconds value) {
  return static_cast<int>(value.count());
}
}  // namespace

grpc::ChannelArguments make_channel_arguments(const ChannelSettings& settings) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(settings.max_message_bytes);
  args.SetMaxSendMessageSize(settings.max_message_bytes);
  args.SetInt(GRPC_ARG_MAX_METADATA_SIZE, kMaxGrpcMetadataBytes);
  if (settings.gzip) args.SetCompressionAlgorithm(GRPC_COMPRESS_GZIP);
  args.SetInt(GRPC_ARG_MAX_CONCURRENT_STREAMS, kMaxConcurrentStreams);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, kKeepaliveTimeMs);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, kKeepaliveTimeoutMs);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  args.SetInt(GRPC_ARG_HTTP2_MIN_SENT_PING_INTERVAL_WITHOUT_DATA_MS, kMinSentPingIntervalMs);
  args.SetInt(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, kMinReceivedPingIntervalMs);
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, to_ms(settings.min_reconnect_backoff));
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, to_ms(settings.min_reconnect_backoff));
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, to_ms(settings.max_reconnect_backoff));
  return args;
}

void apply_server_settings(grpc::ServerBuilder& builder, int max_message_bytes) {
  builder.SetMaxReceiveMessageSize(max_message_bytes);
  builder.SetMaxSendMessageSize(max_message_bytes);
  builder.AddChannelArgument(GRPC_ARG_MAX_METADATA_SIZE, kMaxGrpcMetadataBytes);
  builder.SetCompressionAlgorithmSupportStatus(GRPC_COMPRESS_GZIP, true);
  builder.SetCompressionAlgorithmSupportStatus(GRPC_COMPRESS_DEFLATE, true);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, kMaxConcurrentStreams);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, kKeepaliveTimeMs);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, kKeepaliveTimeoutMs);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_SENT_PING_INTERVAL_WITHOUT_DATA_MS, kMinSentPingIntervalMs);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
                             kMinReceivedPingIntervalMs);
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
}

}  // namespace exo::net
