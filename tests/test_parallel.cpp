// The CPU kernels' thread pool (kernels/cpu/parallel.h): every index once, the team sizes it
// promises, nesting, exceptions, two callers at once, and kernels that plan for a team they
// then do not get (the pool held by another thread).
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <condition_variable>
#include <mutex>
#include <random>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

#include "kernels/cpu/conv.h"
#include "kernels/cpu/loops.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cpu/winograd.h"

namespace {

using namespace sg::kernels::cpu;

// Sets the pool's thread count for a scope.
struct ThreadsGuard {
  int saved = num_threads();
  explicit ThreadsGuard(int n) { set_num_threads(n); }
  ~ThreadsGuard() { set_num_threads(saved); }
};

// Holds the pool (a region whose caller waits) on another thread until release().
class PoolHolder {
 public:
  PoolHolder()
      : t_([this] {
          parallel_region(2, [this](int tid, int) {
            if (tid != 0) return;
            std::unique_lock<std::mutex> lock(mu_);
            held_ = true;
            cv_.notify_all();
            cv_.wait(lock, [this] { return released_; });
          });
        }) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return held_; });
  }
  ~PoolHolder() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      released_ = true;
    }
    cv_.notify_all();
    t_.join();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool held_ = false, released_ = false;
  std::thread t_;
};

}  // namespace

TEST_CASE("parallel: parallel_for visits every index once, on 1 to 5 threads", "[parallel]") {
  for (int threads = 1; threads <= 5; ++threads) {
    ThreadsGuard guard(threads);
    for (int64_t n : {0, 1, 2, 3, 7, 1000, 100003}) {
      std::vector<std::atomic<int>> hits(n);
      std::mutex mu;
      std::set<std::thread::id> ids;
      parallel_for(n, true, [&](int64_t b, int64_t e) {
        REQUIRE(b < e);
        {
          std::lock_guard<std::mutex> lock(mu);
          ids.insert(std::this_thread::get_id());
        }
        for (int64_t i = b; i < e; ++i) hits[i]++;
      });
      for (int64_t i = 0; i < n; ++i) {
        INFO("threads " << threads << " n " << n << " index " << i);
        REQUIRE(hits[i] == 1);
      }
      INFO("threads " << threads << " n " << n);
      CHECK((int64_t)ids.size() == std::min<int64_t>(n, threads));  // one chunk per thread
    }
  }
}

TEST_CASE("parallel: a region's team, and a region inside a region runs on its caller alone", "[parallel]") {
  ThreadsGuard guard(3);
  CHECK_FALSE(in_parallel());
  std::atomic<int> outer{0}, inner_team{0}, inner_calls{0};
  parallel_region(8, [&](int tid, int team) {
    CHECK(team == 3);
    CHECK(in_parallel());
    outer += 1 << tid;
    parallel_region(8, [&](int t2, int team2) {
      CHECK(t2 == 0);
      inner_team += team2;
      inner_calls++;
    });
  });
  CHECK(outer == 0b111);
  CHECK(inner_calls == 3);
  CHECK(inner_team == 3);  // 1 each
  CHECK_FALSE(in_parallel());
  int team1 = 0;
  parallel_region(1, [&](int, int team) { team1 = team; });
  CHECK(team1 == 1);
}

TEST_CASE("parallel: an exception thrown on any thread reaches the caller, and the pool goes on", "[parallel]") {
  ThreadsGuard guard(2);
  for (int thrower = 0; thrower < 2; ++thrower) {
    INFO("thrown on thread " << thrower);
    CHECK_THROWS_WITH(parallel_region(2,
                                      [&](int tid, int) {
                                        if (tid == thrower) throw std::runtime_error("boom on " + std::to_string(tid));
                                      }),
                      "boom on " + std::to_string(thrower));
    std::atomic<int> ran{0};
    parallel_region(2, [&](int, int) { ran++; });
    CHECK(ran == 2);
  }
}

TEST_CASE("parallel: two threads starting regions at once both get every index", "[parallel]") {
  ThreadsGuard guard(2);
  auto work = [](int64_t seed, int64_t* out) {
    int64_t total = 0;
    for (int rep = 0; rep < 300; ++rep) {
      const int64_t n = 1000 + (seed * 7919 + rep * 31) % 5000;
      std::vector<int64_t> part(n, 0);
      parallel_for(n, true, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) part[i] = i;
      });
      for (int64_t v : part) total += v;
      total -= n * (n - 1) / 2;  // 0 when every index was written
    }
    *out = total;
  };
  int64_t a = -1, b = -1;
  std::thread ta(work, 1, &a), tb(work, 2, &b);
  ta.join(), tb.join();
  CHECK(a == 0);
  CHECK(b == 0);
}

TEST_CASE("parallel: a child of fork() gets a pool of its own", "[parallel]") {
  ThreadsGuard guard(2);
  std::atomic<int> warm{0};
  parallel_region(2, [&](int, int) { warm++; });  // the parent's workers exist
  REQUIRE(warm == 2);
  const pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {  // the child: the parent's worker threads are gone; a hang would fail by SIGALRM
    alarm(30);
    std::vector<int> hits(100000, 0);
    std::set<std::thread::id> ids;
    std::mutex mu;
    parallel_for(100000, true, [&](int64_t b, int64_t e) {
      {
        std::lock_guard<std::mutex> lock(mu);
        ids.insert(std::this_thread::get_id());
      }
      for (int64_t i = b; i < e; ++i) hits[i]++;
    });
    bool ok = ids.size() == 2;
    for (int h : hits) ok = ok && h == 1;
    _exit(ok ? 0 : 1);
  }
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}

// The conv kernels plan their accumulators for num_threads() threads; when another thread
// holds the pool they get a team of 1 and must still give the same weight gradient (an earlier
// version summed accumulators no thread had written: wrong gradients under OMP_DYNAMIC).
TEST_CASE("parallel: conv weight gradients equal when the pool is held by another thread", "[parallel][kernels]") {
  ThreadsGuard guard(4);
  std::mt19937_64 rng(11);
  std::normal_distribution<double> normal;
  struct Case {
    int64_t N, C, O, H, k, s, p;
  };
  // im2col path (5x5 kernel, stride 2, 1x1) and the Winograd one (3x3, stride 1, 16+ channels).
  for (const Case& c : {Case{4, 8, 12, 16, 5, 1, 2}, Case{3, 6, 10, 17, 3, 2, 1}, Case{4, 16, 8, 16, 1, 1, 0},
                        Case{4, 16, 24, 16, 3, 1, 1}}) {
    sg::kernels::Conv2dParams p;
    p.N = c.N, p.Cin = c.C, p.Cout = c.O, p.H = p.W = c.H, p.kh = p.kw = c.k, p.sy = p.sx = c.s, p.py = p.px = c.p;
    p.groups = 1;
    const int64_t Ho = (c.H + 2 * c.p - c.k) / c.s + 1;
    std::vector<float> x(p.N * p.Cin * p.H * p.W), dy(p.N * p.Cout * Ho * Ho);
    for (float& v : x) v = (float)normal(rng);
    for (float& v : dy) v = (float)normal(rng);
    std::vector<float> free_pool(p.Cout * p.Cin * c.k * c.k, 777.f), held(free_pool.size(), -777.f);
    conv2d_weight_grad<float>(p, dy.data(), x.data(), free_pool.data());
    {
      PoolHolder holder;
      conv2d_weight_grad<float>(p, dy.data(), x.data(), held.data());
    }
    for (size_t i = 0; i < held.size(); ++i) {
      INFO("N " << c.N << " C " << c.C << "->" << c.O << " " << c.H << "px k " << c.k << " stride " << c.s
                << " element " << i);
      REQUIRE(held[i] == Approx(free_pool[i]).epsilon(1e-4).margin(1e-3));
    }
  }
}

// reduce_sum splits along a dim the output keeps, so each sum adds its terms in the same order
// as on one thread: the same bits at any thread count.
TEST_CASE("parallel: reduce_sum gives the same bits on 1 and 3 threads", "[parallel][kernels]") {
  std::mt19937_64 rng(3);
  std::normal_distribution<float> normal;
  const std::vector<int64_t> shape = {6, 5, 70, 90};  // 189,000 floats: above the parallel grain
  std::vector<float> a(6 * 5 * 70 * 90);
  for (float& v : a) v = normal(rng);
  // keep: which dims the output keeps (1) or reduces (0)
  for (const std::vector<int>& keep : {std::vector<int>{0, 1, 0, 0},
                                       {1, 0, 0, 1},
                                       {1, 1, 1, 0},
                                       {0, 0, 1, 0},
                                       {0, 0, 0, 0},
                                       {1, 1, 1, 1},
                                       {0, 1, 1, 0}}) {
    std::vector<int64_t> so(4, 0);
    int64_t n_out = 1;
    for (int d = 3; d >= 0; --d)
      if (keep[d]) so[d] = n_out, n_out *= shape[d];
    std::vector<double> one(n_out, 0.0), three(n_out, 0.0);
    {
      ThreadsGuard guard(1);
      reduce_sum<float>(shape, a.data(), so, one.data());
    }
    {
      ThreadsGuard guard(3);
      reduce_sum<float>(shape, a.data(), so, three.data());
    }
    INFO("keep " << keep[0] << keep[1] << keep[2] << keep[3]);
    CHECK(one == three);
    double total = 0, direct = 0;
    for (double v : three) total += v;
    for (float v : a) direct += v;
    CHECK(total == Approx(direct).margin(1e-6));
  }
}

// Winograd's weight gradient: each thread's accumulator holds only the groups its tasks meet
// (written, not zero-filled, by their first task); on 1 to 5 threads, grouped or not, it must
// equal the im2col path (f64).
TEST_CASE("parallel: Winograd weight gradients on 1 to 5 threads equal the im2col path", "[parallel][kernels]") {
  std::mt19937_64 rng(17);
  std::normal_distribution<double> normal;
  for (int threads = 1; threads <= 5; ++threads) {
    ThreadsGuard guard(threads);
    for (int64_t groups : {1, 2, 3}) {
      sg::kernels::Conv2dParams p;
      p.N = 3, p.groups = groups, p.Cin = groups * 16, p.Cout = groups * 17, p.H = 9, p.W = 7;
      p.kh = p.kw = 3, p.py = p.px = 1;
      REQUIRE(winograd_applies(p, false));
      std::vector<double> x(p.N * p.Cin * p.H * p.W), dy(p.N * p.Cout * p.H * p.W);
      for (double& v : x) v = normal(rng);
      for (double& v : dy) v = normal(rng);
      std::vector<double> a(p.Cout * 16 * 9, 777.0), b(a.size(), -777.0);
      conv2d_weight_grad_winograd<double>(p, dy.data(), x.data(), a.data());
      conv2d_weight_grad<double>(p, dy.data(), x.data(), b.data());
      for (size_t i = 0; i < a.size(); ++i) {
        INFO("threads " << threads << " groups " << groups << " element " << i);
        REQUIRE(a[i] == Approx(b[i]).margin(1e-10));
      }
    }
  }
}

// A wide layer at low resolution: 480 + 48 channels at F(2x2) leave room for 31 tiles per
// chunk, which the plan (kernels/cpu/winograd.cpp TilePlan) raises to 32 where every thread
// still gets a task (here 2 of them or fewer) and otherwise keeps at 16. However the 64 tiles
// are cut, the forward and the transposed conv (the data gradient) must give the same bits on
// 1 to 5 threads, and match the f64 im2col path.
TEST_CASE("parallel: Winograd convs of a wide layer at 4x4 give the same bits on 1 to 5 threads",
          "[parallel][kernels]") {
  std::mt19937_64 rng(19);
  std::normal_distribution<double> normal;
  for (const bool transposed : {false, true}) {
    sg::kernels::Conv2dParams p;
    p.N = 16, p.Cin = 480, p.Cout = 48, p.H = p.W = 4, p.kh = p.kw = 3, p.py = p.px = 1;
    REQUIRE(winograd_applies(p, transposed));
    std::vector<double> x(p.N * p.Cin * 16), w(p.Cin * p.Cout * 9), ref(p.N * p.Cout * 16);
    for (double& v : x) v = normal(rng);
    for (double& v : w) v = normal(rng) / std::sqrt(480.0 * 9);
    if (transposed)
      conv_transpose2d_forward<double>(p, x.data(), w.data(), ref.data());
    else
      conv2d_forward<double>(p, x.data(), w.data(), ref.data());
    const std::vector<float> xf(x.begin(), x.end()), wf(w.begin(), w.end());
    std::vector<float> first;
    for (int threads = 1; threads <= 5; ++threads) {
      ThreadsGuard guard(threads);
      std::vector<float> got(ref.size(), 777.f);
      conv2d_winograd<float>(p, xf.data(), wf.data(), got.data(), transposed, 2);
      if (first.empty()) first = got;
      for (size_t i = 0; i < got.size(); ++i) {
        INFO("transposed " << transposed << " threads " << threads << " element " << i);
        REQUIRE(got[i] == Approx(ref[i]).margin(1e-3));
        REQUIRE(got[i] == first[i]);
      }
    }
  }
}
