// seeds/002's fork-child: computes fibonacci(n) for each request (inefficiently on purpose).
const fibonacci = (num) => num <= 1 ? 1 : fibonacci(num - 1) + fibonacci(num - 2);
process.on('message', ({ n }) => {
  process.send({ fib: fibonacci(n), n });
  process.disconnect();
});
